"""OpenAPI (drf-spectacular): the bearer scheme of ``identity.authentication``, and where to get a token.

Imported by ``IdentityConfig.ready`` (drf-spectacular finds extensions by subclassing, so the module must be loaded).
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from identity.authentication import BearerTokenAuthentication


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = BearerTokenAuthentication
    name = "bearer"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                "An access token from POST /{tenantId}/oauth2/v2.0/token (client_credentials with a service "
                "principal), or `python manage.py issue_token --user NAME`."
            ),
        }

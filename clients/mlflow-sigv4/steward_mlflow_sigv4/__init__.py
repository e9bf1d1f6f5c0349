"""MLflow request auth for Steward on AWS: every request signed with SigV4 for API Gateway.

Select it with ``MLFLOW_TRACKING_AUTH=steward-sigv4`` (and leave
``MLFLOW_TRACKING_AWS_SIGV4`` unset). Credentials and region come from botocore's standard
chain (environment, ``AWS_PROFILE``, SSO, assumed roles, instance and container roles), read
for each request, so refreshed credentials are picked up.

Why not ``MLFLOW_TRACKING_AWS_SIGV4=true``: MLflow signs with requests-auth-aws-sigv4, which
puts the query string into the canonical request exactly as ``requests`` encoded it, ``+`` for
a space, and folds repeated parameters into one. SigV4 canonicalizes a query with ``%20`` for a
space and keeps every parameter, so a gateway that follows the specification refuses every
search (the client always sends a filter with spaces). Here the query is first re-encoded the
way SigV4 canonicalizes it (RFC 3986, ``%20``), so what is sent and what is signed are the same
bytes however the server reads them, and botocore, AWS's own signer, signs it.
"""

from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.session import Session

SERVICE = "execute-api"


def canonical_url(url):
    """The URL with its query re-encoded as SigV4 canonicalizes one (order kept)."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)
    return urlunsplit(parts._replace(query=query))


class SigV4(requests.auth.AuthBase):
    """Signs a prepared request for API Gateway with the caller's AWS credentials."""

    def __init__(self, session=None):
        self.session = session or Session()

    def __call__(self, r):
        credentials = self.session.get_credentials()
        if credentials is None:
            raise RuntimeError("steward-sigv4: no AWS credentials found (botocore's chain)")
        region = self.session.get_config_variable("region")
        if not region:
            raise RuntimeError("steward-sigv4: no AWS region (set AWS_REGION or a profile's region)")
        r.url = canonical_url(r.url)
        body = r.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        # Only what the gateway sees unchanged is signed: the host and the x-amz-* headers the
        # signer adds (a proxy may rewrite others).
        signed = AWSRequest(method=r.method, url=r.url, data=body)
        SigV4Auth(credentials.get_frozen_credentials(), SERVICE, region).add_auth(signed)
        for name, value in signed.headers.items():
            r.headers[name] = value
        return r


class SigV4Provider:
    """The ``mlflow.request_auth_provider`` entry point named ``steward-sigv4``."""

    def get_name(self):
        return "steward-sigv4"

    def get_auth(self):
        return SigV4()

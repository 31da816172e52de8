"""The narrow label API (``/v1``): the only way buyer data leaves labelvault.

The pipeline, each step able to refuse (with a reason code, audited in app/refusals.py):

1. client IP (trusted-proxy rule) and the global allowlist — app/allowlist.py, before the view;
2. the IP rate limit — app/limits.py, right after (``create_app`` declares both, in this order);
3. API key → the client's own CIDRs → the client's rate limit → scope — :func:`app.api.auth.require_client`;
4. the request's own checks: a well-formed order reference, the label format and its options, a batch's
   body — app/api/request_checks.py, before anything is counted or unsealed;
5. order lookup inside the client's tenant → eligibility → reissue cap → unseal → label profile → render →
   reissue count and audit append → commit → send — app/api/labels.py with :mod:`vault.release`.

Modules: ``routes`` (every route of the API, in one table), ``labels`` (one label, a batch), ``audit`` (the
audit chain's head), ``openapi`` (the OpenAPI document, openapi.json beside it, and its route), ``auth`` (the
API client's steps), ``request_checks`` (the request's own checks).
"""

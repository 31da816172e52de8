"""Dashboard users of a seller, one module per part; import each name from the module that holds it.

- :mod:`vault.users.roles`: owner, operator, viewer, and what each may do;
- :mod:`vault.users.accounts`: creating, finding, changing the role of, disabling and unlocking users;
- :mod:`vault.users.passwords`: the password policy and argon2id hashes, and changing a password;
- :mod:`vault.users.signin`: the password step of sign-in, failures and the lockout;
- :mod:`vault.users.second_factor`: TOTP (RFC 6238) enrolment and checks, recovery codes;
- :mod:`vault.users.invitations`: inviting a user and accepting the invitation;
- :mod:`vault.users.sessions`: server-side dashboard sessions;
- :mod:`vault.users.allowlist`: the tenant's dashboard address ranges;
- :mod:`vault.users.base`: what they share: the errors, how the audit chain names a user.

Nothing here logs or audits an e-mail address or a secret: the audit chain names users as ``user:<id>``.
"""

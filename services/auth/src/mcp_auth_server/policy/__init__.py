"""The credential policy: one answer to "may this user, through this client, hold a credential for this
resource with these scopes, now?", asked by every path that issues or honours a credential.

`credentials.py` decides; `admission.py` asks the upstream whether a user is still admitted (and
deprovisions them when not); `access_tokens.py` says whether an access token we issued is still good.
"""

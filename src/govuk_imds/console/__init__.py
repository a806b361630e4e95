"""`govuk-imds console`: the AWS console in a browser, signed in as an environment's role, the sign-in kept secret.

``destination`` (where in the console to land, checked), ``handoff`` (the one-shot page on 127.0.0.1 that hands the
sign-in to the browser), ``browser`` (finding and starting one). The daemon mints the credentials
(``daemon/console.py``), ``aws/federation.py`` turns them into a sign-in, ``cli/console.py`` drives it all.
May import ``core``, ``config``, ``aws``, ``control`` and ``errors``; no boto3.
"""

"""`govuk-imds doctor`: why is a tool not getting credentials, and what fixes it?

``findings`` (what is reported and how), ``checks`` (pure judgements), ``probes`` (the daemon, the endpoint, STS),
``diagnose`` (all of them in order). Light: no boto3, aiohttp or keyring.
"""

"""AWS through boto3, and nothing else talks to it: STS (GetSessionToken, AssumeRole, GetCallerIdentity) and IAM.

May import ``core``, ``config`` and ``errors``. Only ``endpoints`` is light; every other module imports boto3 or
botocore's client machinery, so the light CLI commands never import them.
"""

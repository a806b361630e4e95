"""The pure core: values, shapes, the session policy and the wire formats, with no I/O.

Nothing in this folder imports aiohttp, boto3, botocore or keyring, or anything of govuk_imds outside ``core`` but
``errors``; everything here is tested with plain values and a fake clock (tests/core).
"""

"""govuk-imds: short-lived AWS credentials for GOV.UK environments from a localhost ECS-style endpoint."""

__version__ = "0.1.0"

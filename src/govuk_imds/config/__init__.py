"""What the user wrote: govuk-imds's own TOML settings, the AWS config's profiles, and where runtime files live.

May import ``core`` and ``errors`` only. ``locations`` is imported by the lean ``credential-process`` path, so this
package's ``__init__`` imports nothing.
"""

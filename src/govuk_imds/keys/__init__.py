"""The long-term key algorithms, with no argparse: import from the credentials file, rotation, listing.

May import ``core``, ``config``, ``aws``, ``keystore`` and ``errors``; the commands that drive them are in
``cli/keys.py``.
"""

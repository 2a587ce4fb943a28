"""The card's other side, without Django (DESIGN.md §2): the relying party's verifier kit
(deny list, UID identification, DESFire and contact authentication, sessions) and the holder's
middleware. ``python -m cpsclient --help``."""

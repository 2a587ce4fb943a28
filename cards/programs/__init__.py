"""Personalization programs: sans-I/O generators the server runs and the station relays.

``base`` defines the protocol (``Batch``/``Step``, ``Checkpoint``, ``CertificateRequest``) and an
in-process runner; ``flow`` packs independent flows into round trips; ``cps4`` is the CPS4 program.
"""

"""The tests' SoftHSM2 token (``pki.keys.softhsm``, shared with the benchmarks)."""

from pki.keys.softhsm import PIN_ENV, TOKEN_LABEL, SoftHsm, extra_token, softhsm_token

__all__ = ["PIN_ENV", "TOKEN_LABEL", "SoftHsm", "extra_token", "softhsm_token"]

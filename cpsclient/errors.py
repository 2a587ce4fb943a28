"""What the verifier kit refuses, with a message that says why."""


class ClientError(Exception):
    """A refusal or failure the command reports (exit status 2)."""


class DenyListRefused(ClientError):
    """A deny list that fails its signature, chain, signer profile or version checks."""

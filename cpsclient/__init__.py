"""The card's other side, without Django (DESIGN.md §2): the one place a holder's or relying
party's software talks to a CPS card (pyscard through pcscd; the pure card library ``cards``).

- the holder's middleware: ``unblock`` (offline PIN unblock with the helpdesk's response),
  ``status`` (PIN and PUK tries left, no try consumed);
- the relying party's verifier kit: ``deny-list``, ``identify``, ``contactless-auth``,
  ``contact-auth``, ``session``.

``python -m cpsclient --help``.
"""

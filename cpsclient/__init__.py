"""The holder's and relying party's card client: the one place their software talks to a CPS card
(pyscard through pcscd). It imports the pure card library ``cards`` and never Django.

``python -m cpsclient unblock --reader NAME``: offline PIN unblock with the helpdesk's response.
``python -m cpsclient status --reader NAME``: PIN and PUK tries left, no try consumed.
"""

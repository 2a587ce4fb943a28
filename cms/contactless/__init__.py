"""The relying parties' side of contactless use: the status service and the signed deny list
(DESIGN.md §7-8, ADR 0021)."""

"""labelvault-print: the packing station's print agent.

A small client of the label API for the warehouse's own PC: order references come in from a barcode scanner
(keyboard input) or a warehouse management system posting a wave to a loopback endpoint; labels come from
the vault (``GET /v1/labels/{marketplace}/{order_id}``, each job with its own ``Idempotency-Key``) and go
to a Zebra printer over TCP 9100 or an office printer's CUPS queue. Label bytes live in memory only, from
the response to the printer; the agent writes nothing to disk and shows only order references and reason
codes. It imports neither Flask nor the vault: it is a client, like any other warehouse's.
"""

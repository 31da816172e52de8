"""Every route of the label API (``/v1``), on one blueprint; the views live in the modules beside this one."""

from __future__ import annotations

from flask import Blueprint, Flask

from app.api import audit, labels, openapi, shipments

bp = Blueprint("api", __name__, url_prefix="/v1")
# head=False: a HEAD request would run the release and drop the label (app/routing.py); it gets a 405.
bp.add_url_rule("/labels/<marketplace>/<order_id>", view_func=labels.get_label, methods=["GET"], head=False)
bp.add_url_rule("/labels/batch", view_func=labels.post_label_batch, methods=["POST"])
bp.add_url_rule("/shipments", view_func=shipments.post_shipment, methods=["POST"])
bp.add_url_rule("/shipments/batch", view_func=shipments.post_shipment_batch, methods=["POST"])
bp.add_url_rule("/shipments/<shipment_id>", view_func=shipments.get_shipment, methods=["GET"])
# head=False: a HEAD would count and audit a label print and drop it, as on the label route.
bp.add_url_rule("/shipments/<shipment_id>/label", view_func=shipments.get_shipment_label, methods=["GET"], head=False)
bp.add_url_rule("/shipments/<shipment_id>/void", view_func=shipments.post_shipment_void, methods=["POST"])
bp.add_url_rule("/audit/head", view_func=audit.audit_head, methods=["GET"])
bp.add_url_rule("/openapi.json", view_func=openapi.openapi_json, methods=["GET"])


def init_app(app: Flask) -> None:
    """Register the label API's routes."""
    app.register_blueprint(bp)

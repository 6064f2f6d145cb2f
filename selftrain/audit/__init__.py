"""Confidence-threshold audits: how much data each threshold keeps, how wrong it is, which to use."""

from selftrain.audit.report import AuditResult, MethodAudit, load_audit, run_audit, write_audit
from selftrain.audit.sweep import SweepPoint, recommend_threshold, score_names, sweep

__all__ = [
    "AuditResult",
    "MethodAudit",
    "SweepPoint",
    "run_audit",
    "write_audit",
    "load_audit",
    "sweep",
    "score_names",
    "recommend_threshold",
]

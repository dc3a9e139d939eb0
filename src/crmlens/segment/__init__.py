"""Segmentation: RFM, clustering, profiles, explanations, rule-based builder, migration."""

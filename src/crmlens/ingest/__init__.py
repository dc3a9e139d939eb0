"""Ingest: read sources of any format into raw workspace tables and map column roles."""

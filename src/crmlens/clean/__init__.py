"""Cleaning: parse and repair values, classify lines, flag anomalies, account for every row."""

"""What finished runs say: tables over seeds, statistics, scaling and the report."""

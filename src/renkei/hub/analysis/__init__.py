"""The analysis path behind every face: tables, SQL results, releases, exports, saved analyses."""

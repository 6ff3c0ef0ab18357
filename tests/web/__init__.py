"""Tests of the web portal (renkei.web): API, pages, terminals over real TLS, the route matrix."""

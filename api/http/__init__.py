"""The REST API (`/v1/…`) served by `tpc serve`."""

"""Remote control over websockets (rtsvc serve / rtsvc remote)."""

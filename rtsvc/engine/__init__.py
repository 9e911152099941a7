"""The live engine: ring buffers, audio callback, worker, SOLA, controller and drivers."""

"""The live engine: ring buffers, audio callback, worker, SOLA, controller and drivers.

Entry point: :class:`rtsvc.engine.controller.Controller` (the only way in, for the CLI, the Qt
panel and remote control). Pieces, in signal order: ``drivers`` / ``sd_driver`` (clock and
streams) -> ``callbacks`` + ``ringbuffer`` (audio thread) -> ``worker`` -> ``pipeline``
(``resampling``, ``pitch_cache``, voice, ``sola``) -> ``callbacks`` again. ``params`` holds
:class:`LiveParams`, ``layout`` the block sizes and latency terms, ``status`` the snapshot,
``measure`` the latency probe, ``recorder`` the output recording, ``voices`` voice specs.
"""

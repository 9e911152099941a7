"""rtsvc: a real-time singing and speech voice changer for So-VITS-SVC 4.x voices.

Import names: ``rtsvc`` (runtime), ``rtsvc.models`` (networks), ``rtsvc.train`` (training),
``rtsvc.gui`` (Qt panel).
"""

__version__ = "0.1.0"

"""rtsvc.models: the networks (SoVITS synthesizer, NSF-HiFiGAN vocoders, content encoders, FCPE)."""

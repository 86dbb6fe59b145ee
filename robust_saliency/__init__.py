"""robust_saliency: adversarial robustness and saliency-map alignment (Etmann et al., ICML 2019)."""

__version__ = "0.1.0"

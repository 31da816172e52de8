"""labelvault's domain core: models, envelope encryption, key providers, retention, audit. No flask here."""

"""Representative-data stages behind ``conversions.engine.representative_data``: layouts, sampling,
preprocess (self-contained: numpy + Pillow only), streaming, standalone."""

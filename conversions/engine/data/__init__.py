"""Representative-data stages behind ``conversions.engine.representative_data``: ``layouts`` (detect),
``sampling`` (draw), ``preprocess`` (read + normalise one image; numpy and Pillow only), ``options`` (flags),
``streaming`` (parallel bounded decode), ``standalone`` (write a self-contained module)."""

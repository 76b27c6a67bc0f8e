"""The conversion engine: plain Python, no Django. The CLI, the RQ worker, the API and the tests call it.

The one entry is ``pipeline.run_export(config, progress) -> report.results.ExportReport``; its folders are
the pipeline's stages, in the order a run goes through them::

    config.py        ExportConfig, ModelSpec, DataSpec: what a run is asked, parsed and range-checked once, stored as JSON
    variants.py      the .tflite variants (float32, float16, dynamic, int8, int16x8): one definition
    errors.py        user-facing errors: what, where, what to do; the input at fault as a field
    progress.py      stage / fraction / log lines, for the terminal and the run page alike
    tensors.py       NCHW/NHWC layouts and SQNR, shared by every stage
    pipeline.py      run_export: strings the stages together
    script_api.py    ModelExporter: the engine as a Python object for scripts

    model/           checkpoint + architecture -> eval-mode nn.Module
      loading.py       state dicts, .pt2 programs, pickles (with trust), factories
      pt2_archive.py   a .pt2 read without loading it: the payloads torch.export.load would unpickle
      pt2_ops.py       the graph ops an untrusted .pt2 may hold: what a vision model computes
      sandbox.py       untrusted bytes parsed in a child with no secrets, no network, another uid; tensors back
      builtin.py       models that ship by name, their weights from pip packages
      ultralytics.py   Ultralytics checkpoints as a plain detector module
    data/            dataset folder -> calibration stream and held-out inputs
      structure.py     DatasetStructure and the one-pass folder listing
      layouts.py       which layout a folder holds (ImageFolder, flat, list file)
      headers.py       every file's header checked: empty, truncated and fake images listed by name
      yolo.py          YOLO folders, data.yaml, list files
      sampling.py      seeded, stratified, disjoint calibration / evaluation draws
      preprocess.py    reading and preprocessing one image (copied verbatim by standalone.py)
      decode.py        one file -> one sample, in the decode workers
      streaming.py     bounded-memory parallel decoding
      generator.py     RepresentativeDataGenerator: the public face of the data stage
      options.py       preprocessing overrides from flags
      standalone.py    a self-contained module that regenerates the samples
      labels.py        class names and which output each class folder stands for
      run_inputs.py    one run's calibration stream and held-out inputs
    convert/         nn.Module -> ONNX -> TensorFlow -> one .tflite variant
      torch_rewrites.py  exact PyTorch rewrites before export (PReLU, hard-swish, LayerNorm) so int8 stays on XNNPACK
      onnx_export.py   PyTorch -> ONNX
      onnx_rewrites.py the exported ONNX file's divisions by a constant made products, for the same reason
      tf_routes.py     ONNX -> TensorFlow through onnx2tf, routes tried until one matches ONNX Runtime
      route_errors.py  a failed route's error, the ONNX op at fault and what to try
      tflite_variant.py one .tflite variant from the TensorFlow graph
    int8/            the int8 model a run ships
      build.py         one calibration, ranges, bias correction, per-layer error, the guard
      ranges.py        activation ranges (minmax, percentile, mse) written into the calibrated model
      statistics.py    min/max and histograms of every calibrated tensor, the samples split over both cores
      bias_correction.py  each conv/FC op's mean output error folded into its int32 bias
      tflite_graph.py  a .tflite opened for inspection, float and int8 twins paired
      layer_error.py   per-layer error of int8 against float
      module_names.py  PyTorch module names for TFLite ops, matched by value through ONNX
      guard.py         --max-drop: ops kept in float until the budget holds
      budget.py        the budget measured on held-out images
    detection/       detectors: head-aware export, decoding, NMS, mAP
      prepare.py       task decision and the head made int8-safe
      head.py          the head plan and channel-range checks
      head_graph.py    the head's output concat found and rewritten in the ONNX graph
      decode.py        predictions -> detections, class-aware NMS
      geometry.py      image <-> model-input coordinates
      metrics.py       mAP@0.5 and mAP@0.5:0.95
      evaluate.py      every variant scored by mAP
      samples.py       side-by-side pictures of PyTorch's and a variant's boxes
    verify/          every variant against PyTorch
      interpreter.py   running .tflite files: outputs, latency, integer-only audit
      native.py        native steps that can abort (XNNPACK prepare, per-layer error) run in a spawned child
      metrics.py       top-1 / confident / top-5 agreement, SQNR, the Wilson interval of an agreement
      accuracy.py      labeled top-1 / top-5
      variants.py      every built variant verified on the run's held-out inputs
      micro.py         int8 files in the TFLite Micro interpreter: missing ops, arena, exactness (crash-isolated)
    metadata/        TFLite metadata inside every .tflite: what it is, how to feed it, its labels
      schema.py        the ModelMetadata flatbuffer (metadata_schema.fbs) written and read with flatbuffers
      embed.py         metadata and associated files into a .tflite and back out
      write.py         the stage: each file described, written, read back, checked to run as before
    report/          what a run tells and writes
      results.py       ExportReport, VariantReport, PyTorchReference: typed, to_dict / from_dict
      int8_results.py  the int8 stage's typed results (ranges, bias correction, layers, guard)
      device_results.py  the metadata read back from a file, TFLite Micro readiness
      records.py       frozen dataclasses to JSON and back, forgiving of older reports
      outputs.py       every file planned before the work, written atomically at the end
      atomic.py        atomic, never-overwriting writes
      summary.py       the table the CLI prints and report.md embeds
      tables.py        the rows of the variants, per-layer and disagreement tables
      html_tables.py   those tables as HTML: report.html and the portal's pages share them
      charts.py        plotly figures shared by report.html and the portal
      files.py         report.md and a self-contained report.html
"""

"""Model building blocks shared by methods: numpy-trained networks and random-forest members, their
ONNX export, model cards (JSON in ONNX ``metadata_props``, validated against one schema), verified
model folders (hashes checked before anything is loaded), input features and their encoding,
balanced sample weights, and station-grouped cross-validation splits and scores."""

"""Training: the training-step file format, the trainer that runs a step in either engine,
minibatch SGD on a gradient graph, and progress display."""

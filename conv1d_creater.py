"""Step 5: score model A, the seed's convolutional design: Conv1D -> max-pool, three times, (40, 512) -> (5, 512).

Reads   data/scores/                 the score dataset of create_encoded_data.py
        models/autoencoder.json      to check the scores were made by the current autoencoder
Writes  models/conv1d.keras          the trained model (its experts and Gaussian read-out included)
        models/conv1d.json           resolved arguments, fingerprints, validation ranking vs simple scorers
        models/conv1d_loss.png       loss curves; models/logs/<run>/ TensorBoard logs

Example:
    python conv1d_creater.py --filters 64 --epochs 30
"""
from common import cli, score_models
from common.errors import PipelineError

POOLINGS = 3  # three Conv1D -> MaxPool1D(2) stages: 40 steps -> 20 -> 10 -> 5


def parse_args(argv):
    parser = score_models.make_parser(__doc__, "conv1d")
    parser.add_argument("--filters", type=int, default=64, help="channels of the first two Conv1D layers (default 64)")
    parser.add_argument("--kernel-size", type=int, default=3, help="Conv1D kernel width in steps (default 3)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cli.setup_logging(args)
    with cli.user_errors():
        return score_models.train(args, "conv1d",
                                  lambda *shape: build_body(*shape, args.filters, args.kernel_size, args.dropout))


def build_body(in_steps, out_steps, outputs, filters, kernel_size, dropout=0.0):
    """Conv1D -> MaxPool1D(2), three times: (in_steps, channels) -> (out_steps, outputs), the experts'
    precisions and the mean's correction for each predicted step (common/score_models.py).

    A Dense fixes up the length when in_steps / 8 != out_steps.
    """
    from keras import layers

    if in_steps < 2 ** POOLINGS:
        raise PipelineError(f"the conv1d model needs at least {2 ** POOLINGS} input steps, the dataset has {in_steps}")

    needs_dense = in_steps // 2 ** POOLINGS != out_steps

    def body(x):
        from common.score_layers import NewestFirst

        # Newest step first: each pooled output sees one stretch of the window, and the first predicted step's
        # should be the stretch just before it (oldest first, it saw the window's first 3 s).
        x = NewestFirst()(x)
        for stage, width in enumerate((filters, filters, outputs)):
            last = stage == POOLINGS - 1
            # The last layer starts at zero: the untrained model trusts its experts as they start.
            initializer = "zeros" if last and not needs_dense else "glorot_uniform"
            if last and dropout:
                x = layers.Dropout(dropout)(x)
            x = layers.Conv1D(width, kernel_size, padding="same", activation=None if last else "relu",
                              kernel_initializer=initializer)(x)
            x = layers.MaxPooling1D(2)(x)
        if needs_dense:
            flat = layers.Dense(out_steps * outputs, kernel_initializer="zeros")(layers.Flatten()(x))
            x = layers.Reshape((out_steps, outputs))(flat)
        return x

    return body


if __name__ == "__main__":
    main()

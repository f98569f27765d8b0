"""Step 6: score model B, the seed's recurrent design: a stateless LSTM, then Dense + Reshape to (5, 512).

Reads   data/scores/                 the score dataset of create_encoded_data.py
        models/autoencoder.json      to check the scores were made by the current autoencoder
Writes  models/lstm.keras            the trained model (its experts and Gaussian read-out included)
        models/lstm.json             resolved arguments, fingerprints, validation ranking vs simple scorers
        models/lstm_loss.png         loss curves; models/logs/<run>/ TensorBoard logs

Example:
    python lstm_creater.py --units 64 --epochs 30
"""
from common import cli, score_models


def parse_args(argv):
    parser = score_models.make_parser(__doc__, "lstm")
    parser.add_argument("--units", type=int, default=64, help="LSTM units (default 64)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cli.setup_logging(args)
    with cli.user_errors():
        return score_models.train(args, "lstm", lambda *shape: build_body(*shape, args.units, args.dropout))


def build_body(in_steps, out_steps, outputs, units, dropout=0.0):
    """Stateless LSTM over the window, its last state -> Dense -> Reshape to (out_steps, outputs): the experts'
    precisions and the mean's correction for each predicted step (common/score_models.py).

    The Dense starts at zero, so the untrained model trusts its experts as they start.
    """
    from keras import layers

    def body(x):
        state = layers.LSTM(units)(x)
        if dropout:
            state = layers.Dropout(dropout)(state)
        flat = layers.Dense(out_steps * outputs, kernel_initializer="zeros")(state)
        return layers.Reshape((out_steps, outputs))(flat)

    return body


if __name__ == "__main__":
    main()

//! Ground truth by retraining (leave-one-contributor-out, TMC-Shapley) and fidelity measures.

"""Learning to transfer (L2T, Wei et al., ICML 2018): learn from past transfer experiences
which projection to transfer through, then apply it to a new pair.

    from transferkit.l2t import ExperienceStore, L2T, TransferPair, generate_experiences

    store = generate_experiences(named_pairs, ExperienceStore("experiences/"))
    model = L2T().fit(store)
    out = model.transfer(Xs, ys, Xt, Xt_labelled, yt_labelled)
    predictions = out.predict(X_new)
"""

from .algorithms import (
    DEFAULT_BASES,
    create_base_algorithm,
    list_base_algorithms,
    register_base_algorithm,
)
from .experience import (
    Experience,
    ExperienceStore,
    TransferPair,
    generate_experiences,
    improvement_ratio,
    make_experience,
    nearest_neighbour_accuracy,
)
from .features import (
    DEFAULT_EXPONENTS,
    PairStatistics,
    discriminability,
    linear_mmd2,
    median_sq_distance,
    mmd2_unbiased,
    n_kernels_of,
    reflection_features,
    scatter_matrices,
    split_features,
)
from .reflection import L2T, ReflectionFunction, Transferred, fit_reflection, optimise_projection

__all__ = ["DEFAULT_BASES", "DEFAULT_EXPONENTS", "Experience", "ExperienceStore", "L2T",
           "PairStatistics",
           "ReflectionFunction", "TransferPair", "Transferred", "create_base_algorithm",
           "discriminability", "fit_reflection", "generate_experiences", "improvement_ratio",
           "linear_mmd2", "list_base_algorithms", "make_experience", "median_sq_distance",
           "mmd2_unbiased", "n_kernels_of", "nearest_neighbour_accuracy",
           "optimise_projection", "reflection_features", "register_base_algorithm",
           "scatter_matrices", "split_features"]

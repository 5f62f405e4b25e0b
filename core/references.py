"""The bibliography: every published work the code, the GUI and the report cite.

One ``Reference`` per work, under a short key; docstrings, tooltips and report text
cite a work by its ``short`` form ("Lu et al. 2024"), never by a file number, so a
reader can find it.  Explainers name theirs in ``ExplainerInfo.reference``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    key: str
    authors: str
    year: int
    title: str
    venue: str
    short: str  # how the code cites it: "Lu et al. 2024"

    def citation(self) -> str:
        """The full reference in one line, as a references list prints it."""
        return f"{self.authors}, {self.title}, {self.venue}"


REFERENCES: dict[str, Reference] = {
    r.key: r
    for r in (
        # the papers the project implements
        Reference(
            "fggb",
            "Y. Lu, Z. Xu, T. Ebrahimi",
            2024,
            "Explainable Face Verification via Feature-Guided Gradient Backpropagation",
            "FG 2024",
            "Lu et al. 2024",
        ),
        Reference(
            "ddfv",
            "Z. Xu, Y. Lu, T. Ebrahimi",
            2023,
            "Discriminative Deep Feature Visualization for Explainable Face "
            "Recognition",
            "arXiv:2306.00402, 2023",
            "Xu et al. 2023",
        ),
        Reference(
            "lime-verification",
            "F. Alonso-Fernandez, K. Hernandez-Diaz, J. M. Buades, P. Tiwari, J. Bigun",
            2023,
            "An Explainable Model-Agnostic Algorithm for CNN-based Biometrics "
            "Verification",
            "WIFS 2023",
            "Alonso-Fernandez et al. 2023",
        ),
        Reference(
            "ecloss",
            "H. Lin, H. Liu, Q. Li, L. Shen",
            2023,
            "Activation Template Matching Loss for Explainable Face Recognition",
            "FG 2023",
            "Lin et al. 2023",
        ),
        # other works the methods, metrics and tests follow
        Reference(
            "corrrise",
            "Y. Lu, Z. Xu, T. Ebrahimi",
            2024,
            "Towards Visual Saliency Explanations of Face Verification",
            "WACV 2024",
            "Lu et al. 2024b",
        ),
        Reference(
            "lime",
            "M. T. Ribeiro, S. Singh, C. Guestrin",
            2016,
            "'Why Should I Trust You?': Explaining the Predictions of Any Classifier",
            "KDD 2016",
            "Ribeiro et al. 2016",
        ),
        Reference(
            "gradcam",
            "R. R. Selvaraju et al.",
            2017,
            "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based "
            "Localization",
            "ICCV 2017",
            "Selvaraju et al. 2017",
        ),
        Reference(
            "gradcampp",
            "A. Chattopadhyay, A. Sarkar, P. Howlader, V. N. Balasubramanian",
            2018,
            "Grad-CAM++: Generalized Gradient-based Visual Explanations for Deep "
            "Convolutional Networks",
            "WACV 2018",
            "Chattopadhyay et al. 2018",
        ),
        Reference(
            "gradient",
            "K. Simonyan, A. Vedaldi, A. Zisserman",
            2014,
            "Deep Inside Convolutional Networks: Visualising Image Classification "
            "Models and Saliency Maps",
            "ICLR Workshop 2014",
            "Simonyan et al. 2014",
        ),
        Reference(
            "gradient-input",
            "A. Shrikumar, P. Greenside, A. Shcherbina, A. Kundaje",
            2016,
            "Not Just a Black Box: Learning Important Features Through Propagating "
            "Activation Differences",
            "arXiv:1605.01713, 2016",
            "Shrikumar et al. 2016",
        ),
        Reference(
            "integrated-gradients",
            "M. Sundararajan, A. Taly, Q. Yan",
            2017,
            "Axiomatic Attribution for Deep Networks",
            "ICML 2017",
            "Sundararajan et al. 2017",
        ),
        Reference(
            "smoothgrad",
            "D. Smilkov, N. Thorat, B. Kim, F. Viégas, M. Wattenberg",
            2017,
            "SmoothGrad: removing noise by adding noise",
            "arXiv:1706.03825, 2017",
            "Smilkov et al. 2017",
        ),
        Reference(
            "xface",
            "M. Knoche, T. Teepe, S. Hörmann, G. Rigoll",
            2023,
            "Explainable Model-Agnostic Similarity and Confidence in Face Verification",
            "WACV Workshops 2023",
            "Knoche et al. 2023",
        ),
        Reference(
            "xssab",
            "M. Huber, A. T. Luu, P. Terhörst, N. Damer",
            2024,
            "Efficient Explainable Face Verification based on Similarity Score "
            "Argument Backpropagation",
            "WACV 2024",
            "Huber et al. 2024",
        ),
        Reference(
            "minusplus",
            "D. Mery",
            2022,
            "True Black-Box Explanation in Facial Analysis",
            "CVPR Workshops 2022",
            "Mery 2022",
        ),
        Reference(
            "metric-learning-explanation",
            "S. Zhu, T. Yang, C. Chen",
            2021,
            "Visual Explanation for Deep Metric Learning",
            "IEEE TIP 2021 (arXiv:1909.12977, 2019)",
            "Zhu et al. 2021",
        ),
        Reference(
            "bilrp",
            "O. Eberle et al.",
            2022,
            "Building and Interpreting Deep Similarity Models",
            "IEEE TPAMI 2022",
            "Eberle et al. 2022",
        ),
        Reference(
            "occlusion",
            "M. D. Zeiler, R. Fergus",
            2014,
            "Visualizing and Understanding Convolutional Networks",
            "ECCV 2014",
            "Zeiler & Fergus 2014",
        ),
        Reference(
            "rise",
            "V. Petsiuk, A. Das, K. Saenko",
            2018,
            "RISE: Randomized Input Sampling for Explanation of Black-box Models",
            "BMVC 2018",
            "Petsiuk et al. 2018",
        ),
        Reference(
            "sanity-checks",
            "J. Adebayo, J. Gilmer, M. Muelly, I. Goodfellow, M. Hardt, B. Kim",
            2018,
            "Sanity Checks for Saliency Maps",
            "NeurIPS 2018",
            "Adebayo et al. 2018",
        ),
        Reference(
            "fiswg-features",
            "Facial Identification Scientific Working Group (FISWG)",
            2018,
            "Facial Image Comparison Feature List for Morphological Analysis, "
            "Version 2.0",
            "FISWG, 2018.09.11",
            "FISWG 2018",
        ),
    )
}


def reference(key: str) -> Reference:
    """The reference under ``key`` (KeyError names an unknown key)."""
    return REFERENCES[key]

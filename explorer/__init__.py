"""Generative Geometry Explorer: the Streamlit-free library.

Local geometry of generators (ψ, ν, δ; Humayun et al., ICLR 2025) and density-based generative
geodesics (Kim et al., 2024) on built-in and user models. See DESIGN.md for the math.
"""

__version__ = "0.1.0"

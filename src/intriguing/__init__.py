"""intriguing: the engine under the book "Intriguing Properties, Reproduced".

An executable reproduction of Szegedy et al., "Intriguing properties of neural
networks" (ICLR 2014, arXiv:1312.6199) on MNIST. Chapters import these modules;
nothing in a chapter re-implements what lives here.
"""

__version__ = "0.1.0"

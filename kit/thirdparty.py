"""Third-party imports that need care, done once and scoped.

matchms imports psims, which warns at import time about an optional HDF5 codec
(``hdf5plugin``) that the kit never uses. The warning is silenced around that one import
only: the program's own warning filters stay as they were.
"""
import warnings


def import_matchms():
    """Import matchms without psims's ``hdf5plugin is missing`` warning; return the module.

    Call it before the first ``from matchms import ...`` of a code path; later imports
    find matchms loaded and warn about nothing.

    Examples
    --------
    >>> import_matchms().__name__
    'matchms'
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="hdf5plugin is missing")
        import matchms
    return matchms

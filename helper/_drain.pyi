from array import array

def read_slots(
    fd: int,
    buffer: bytearray,
    stride: int,
    rest: bytearray,
    lengths: array[int],
    count: int,
    keep_one_in: int,
    skip: int,
    skipped_length: int,
    /,
) -> tuple[int, int, int, int, int]: ...

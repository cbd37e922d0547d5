/*
 * The read loop of a held device's capture, in C.
 *
 * A held device's capture reads the device's queue one packet a read(2),
 * which is all a TUN/TAP queue offers.  Done from Python, each packet costs
 * an os.readv call, a tuple and a few integers: the loop then drains a
 * queue at about 60% of the rate of a C read() loop (bench/drain.py).  This
 * module runs the same loop in C, with the GIL released, into the slots the
 * Python side owns; tungui_helper.drain falls back to the Python loop when
 * it was not built.
 *
 * read_slots(fd, buffer, stride, rest, lengths, count, keep_one_in, skip,
 *            skipped_length) -> (count, read, skip, skipped_length, errno)
 *
 * Reads packets from the non-blocking fd into slot ``count`` onwards of
 * ``buffer`` (slots of ``stride`` bytes; what does not fit in a slot goes
 * to ``rest`` and is let go, so a read still returns the packet's whole
 * length) until the queue is empty or every slot of ``lengths`` (uint32,
 * one a slot) is used.  Of the packets read, one in ``keep_one_in`` keeps
 * its slot: the others are counted, and the next packet overwrites them,
 * so the last one sampled out is still in the next slot, ``skipped_length``
 * bytes long.  ``skip`` is the sampling's position, carried from call to
 * call.  ``errno`` is 0 when the queue was emptied or the slots filled,
 * else the error that ended the reading.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdint.h>
#include <sys/uio.h>

static PyObject *
read_slots(PyObject *Py_UNUSED(self), PyObject *args)
{
    int fd;
    Py_buffer buffer, rest, lengths;
    Py_ssize_t stride, count;
    unsigned long keep_one_in, skip, skipped_length;
    if (!PyArg_ParseTuple(args, "iw*nw*w*nkkk", &fd, &buffer, &stride, &rest, &lengths, &count,
                          &keep_one_in, &skip, &skipped_length))
        return NULL;

    PyObject *result = NULL;
    Py_ssize_t slots = lengths.len / (Py_ssize_t)sizeof(uint32_t);
    if (stride <= 0 || keep_one_in == 0 || skip >= keep_one_in) {
        PyErr_SetString(PyExc_ValueError, "bad stride or sampling");
        goto done;
    }
    if (buffer.len / stride < slots)
        slots = buffer.len / stride;
    if (count < 0 || count > slots) {
        PyErr_SetString(PyExc_ValueError, "count out of range");
        goto done;
    }

    char *base = buffer.buf;
    uint32_t *length = lengths.buf;
    unsigned long long read = 0;
    int error = 0;
    Py_BEGIN_ALLOW_THREADS
    struct iovec iov[2] = {{NULL, (size_t)stride}, {rest.buf, (size_t)rest.len}};
    while (count < slots) {
        iov[0].iov_base = base + count * stride;
        ssize_t n = readv(fd, iov, 2);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                error = errno;
            break;
        }
        read++;
        if (keep_one_in > 1) {
            skip = (skip + 1) % keep_one_in;
            if (skip) {
                /* Left in its slot, to be overwritten by the next. */
                skipped_length = (unsigned long)n;
                continue;
            }
        }
        skipped_length = 0;
        length[count++] = (uint32_t)n;
    }
    Py_END_ALLOW_THREADS

    result = Py_BuildValue("nKkki", count, read, skip, skipped_length, error);
done:
    PyBuffer_Release(&buffer);
    PyBuffer_Release(&rest);
    PyBuffer_Release(&lengths);
    return result;
}

static PyMethodDef methods[] = {
    {"read_slots", read_slots, METH_VARARGS,
     "read_slots(fd, buffer, stride, rest, lengths, count, keep_one_in, skip, skipped_length)\n"
     "-> (count, read, skip, skipped_length, errno)\n\n"
     "Read a device's queue into fixed slots until it is empty or the slots are full."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot module_slots[] = {
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_GIL_DISABLED
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tungui_helper._drain",
    .m_doc = "The read loop of a held device's capture, in C.",
    .m_size = 0,
    .m_methods = methods,
    .m_slots = module_slots,
};

PyMODINIT_FUNC
PyInit__drain(void)
{
    return PyModuleDef_Init(&module);
}

package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/vktrain/vktrain/data"
	"github.com/vktrain/vktrain/internal/atomicfile"
)

// fashionPackage is the Debian package of Fashion-MNIST; fashionInstalled is where it puts the
// idx files.
const (
	fashionPackage   = "dataset-fashion-mnist"
	fashionInstalled = "/usr/share/datasets/fashion-mnist"
)

// fetchFashion copies Fashion-MNIST's four idx files into out: from the installed package when
// it is there, else from deb (or a .deb apt-get downloads, unpacked with dpkg-deb, no root
// needed). The files are read back (data.LoadFashionMNIST) before anything is written, and a
// complete out is left as it is unless force is set.
func fetchFashion(out, deb string, force bool, stdout io.Writer) error {
	if !force {
		if _, err := data.LoadFashionMNIST(out); err == nil {
			fmt.Fprintf(stdout, "%s is complete (Fashion-MNIST, every file read); nothing to do\n", out)
			return nil
		}
	}
	src := fashionInstalled
	if _, err := data.LoadFashionMNIST(src); err != nil || deb != "" {
		root, _, cleanup, err := unpack(fashionPackage, deb, stdout)
		if err != nil {
			return err
		}
		defer cleanup()
		src = filepath.Join(root, fashionInstalled)
	}
	splits, err := data.LoadFashionMNIST(src)
	if err != nil {
		return fmt.Errorf("the package's files: %w", err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, f := range data.FashionMNISTFiles {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return err
		}
		if err := atomicfile.Write(filepath.Join(out, f), b); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "wrote %s: %d training, %d validation and %d test images of %d x %d\n", out,
		splits.Train.Len(), splits.Val.Len(), splits.Test.Len(), splits.Train.H, splits.Train.W)
	return nil
}

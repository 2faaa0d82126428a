package kubeapitest

import "testing"

func TestFlagsMustBeNameEqualsValue(t *testing.T) {
	got, err := flagPairs([]string{"--kubelet-client-key=/p/k.pem", "--enable-admission-plugins=A,B", "--empty="})
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"kubelet-client-key", "/p/k.pem"}, {"enable-admission-plugins", "A,B"}, {"empty", ""}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("flag %d: %v, want %v", i, got[i], want[i])
		}
	}
	for _, bad := range [][]string{{"--kubelet-client-key", "/p/k.pem"}, {"kubelet-client-key=/p"}, {"--=x"}} {
		if _, err := flagPairs(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

package scheme

import (
	"net/url"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestPodOptionsDecodeFromQuery(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	stderr := "Stderr"
	since := metav1.NewTime(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC).Local()) // metav1.Time decodes to local time
	for _, tc := range []struct {
		query string
		into  runtime.Object
		want  runtime.Object
	}{
		{"container=app&command=sh&command=-c&command=date&stdin=true&stdout=1&stderr=false&tty=true", &corev1.PodExecOptions{},
			&corev1.PodExecOptions{Container: "app", Command: []string{"sh", "-c", "date"}, Stdin: true, Stdout: true, TTY: true}},
		{"container=app&stdout=true&stderr=true", &corev1.PodAttachOptions{},
			&corev1.PodAttachOptions{Container: "app", Stdout: true, Stderr: true}},
		{"ports=80&ports=443", &corev1.PodPortForwardOptions{}, &corev1.PodPortForwardOptions{Ports: []int32{80, 443}}},
		{"container=app&follow=true&tailLines=10&limitBytes=5&sinceSeconds=60&timestamps=true&previous=true&stream=Stderr",
			&corev1.PodLogOptions{}, &corev1.PodLogOptions{Container: "app", Follow: true, TailLines: i64(10), LimitBytes: i64(5),
				SinceSeconds: i64(60), Timestamps: true, Previous: true, Stream: &stderr}},
		{"sinceTime=2024-01-02T03:04:05Z", &corev1.PodLogOptions{}, &corev1.PodLogOptions{SinceTime: &since}},
	} {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		if err := ParameterCodec.DecodeParameters(q, corev1.SchemeGroupVersion, tc.into); err != nil {
			t.Fatalf("%s: %v", tc.query, err)
		}
		tc.into.GetObjectKind().SetGroupVersionKind(tc.want.GetObjectKind().GroupVersionKind())
		if !reflect.DeepEqual(tc.into, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.query, tc.into, tc.want)
		}
	}
}
